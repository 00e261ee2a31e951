"""The one canonical form of an email address.

It decides uniqueness (the `users.email_canonical` column and its unique index), the login
lookup and every rate-limit key, so two spellings that reach the same account also share
its limits. NFKC folds compatibility forms (fullwidth letters, ligatures), casefold is
Unicode's caseless matching ("Straße" and "STRASSE" are one address), and the final NFKC
keeps the result stable when canonicalised again.
"""

import unicodedata

# The users.email_canonical column's length. NFKC can make an address much longer (U+FDFA
# is one character and eighteen after it), so a valid address may not fit: registration
# refuses it.
MAX_CANONICAL_LENGTH = 320


def canonical_email(email: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email.strip()).casefold())
