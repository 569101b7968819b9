"""The users-and-access area: accounts and sessions (``accounts``), passwords, tokens,
the policy that mails links (``emails``), and its HTTP routers."""
