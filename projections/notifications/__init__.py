"""Read models of the notifications area: each user's in-app inbox."""
