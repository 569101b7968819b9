"""The write API: one router per resource, thin over the command handlers."""
