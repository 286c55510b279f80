"""Password sign-in by username or e-mail address."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from . import throttling
from .identity import account_for


class UsernameOrEmailBackend(ModelBackend):
    """Django's model backend, except that the name may also be the account's e-mail (any case), as
    Tiledesk's clients sign in, and that while sign-ins are throttled (`accounts.throttling`) it
    refuses before hashing anything."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not isinstance(username, str) or not username or password is None:
            return None
        if request is not None and throttling.retry_after(request, username):
            raise PermissionDenied("Too many failed sign-ins.")  # authenticate() stops here: no hashing
        user = account_for(request, username)
        if user is None:
            # Hash anyway, so that an unknown name takes as long as a wrong password.
            get_user_model()().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
