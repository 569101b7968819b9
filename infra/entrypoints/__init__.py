"""How a process is entered and how it answers: the ``shop`` CLI, the HTTP app factory
with its edge, problem mapping, health and metrics, and the scaled mode's roles."""
