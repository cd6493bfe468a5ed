"""The staff console at ``/staff``: sign-in (accounts.py) and the pages staff use (console.py)."""
