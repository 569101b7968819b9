"""The users area's write API: registration and sessions, a user's own account, admin
actions, the pages mailed links open."""
