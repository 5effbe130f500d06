"""Sign in: the only page of a visitor without an invite link (see app/Home.py)."""

from affectlab.app.signin import sign_in_form

sign_in_form()
