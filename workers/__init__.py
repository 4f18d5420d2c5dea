"""Entry points only: each module here is run with ``python -m``; nothing imports them."""
