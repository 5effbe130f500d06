"""The pages of the app, one script each (registered in app/Home.py)."""
