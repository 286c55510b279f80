"""Who a sign-in names: Tiledesk's clients sign in with an e-mail address, people here also with a
username."""

from django.contrib.auth import get_user_model
from django.db.models import Q


def find_account(identifier: str):
    """The user whose username or e-mail is `identifier`, in any case; None when there is none, or
    when the name is ambiguous (an e-mail shared by several accounts) and no username matches it
    exactly. Inactive users are found too: the backend refuses them, after the same hashing."""
    identifier = (identifier or "").strip()
    if not identifier:
        return None
    User = get_user_model()
    matches = list(
        User.objects.filter(Q(**{f"{User.USERNAME_FIELD}__iexact": identifier}) | Q(email__iexact=identifier))[:5]
    )
    exact = [user for user in matches if user.get_username() == identifier]
    if len(exact) == 1:
        return exact[0]
    return matches[0] if len(matches) == 1 else None


def account_for(request, identifier: str):
    """`find_account`, looked up once per request: a sign-in asks it before checking the password
    (for the limits), while checking it, and again when it fails (to count the failure)."""
    if request is None:
        return find_account(identifier)
    found = getattr(request, "_signin_accounts", None)
    if found is None:
        found = {}
        request._signin_accounts = found
    if identifier not in found:
        found[identifier] = find_account(identifier)
    return found[identifier]
