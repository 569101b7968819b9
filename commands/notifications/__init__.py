"""The notifications area: what the shop tells people about their accounts and
orders, decided from the committed events and delivered on every channel."""
