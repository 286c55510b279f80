"""DRF authentication for Tiledesk's clients: `Authorization: JWT <jwt>`, and HTTP basic auth with the
username or the e-mail address. Both work on every API path, beside `Authorization: Token <key>`."""

from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

from . import throttling, tokens


class SigninThrottled(Throttled):
    default_detail = "Too many failed sign-ins from this address or for this account; try again later."
    extra_detail_singular = extra_detail_plural = "Try again in {wait} seconds."


# What a browser says in `Sec-Fetch-Site` about a request made by a page of this very site, or
# typed by the user; anything else comes from another site's page.
OWN_SITE = {"same-origin", "none"}


class BasicAuthentication(authentication.BasicAuthentication):
    """HTTP basic auth with the username or the e-mail (any case). While sign-ins are throttled for
    the caller's address or the account it answers 429 with `Retry-After`, before hashing anything:
    a client that retries on 401 would otherwise take a right password for a wrong one.

    A browser that was once given basic credentials sends them again by itself, on requests that
    other sites' pages make too (a form posted from anywhere), which is the cross-site request forgery
    that CSRF tokens stop for sessions. So basic auth is not taken from a request a browser marks as
    coming from another site (`Sec-Fetch-Site`); scripts send no such header, and pages of other
    origins authenticate with a JWT, which a browser never adds by itself."""

    def authenticate(self, request):
        if request.META.get("HTTP_SEC_FETCH_SITE", "none") not in OWN_SITE:
            return None
        return super().authenticate(request)

    def authenticate_credentials(self, userid, password, request=None):
        if request is not None and (wait := throttling.retry_after(request, userid)):
            raise SigninThrottled(wait)
        return super().authenticate_credentials(userid, password, request)


class JWTAuthentication(authentication.BaseAuthentication):
    """`Authorization: JWT <jwt>` (the scheme in any case, as Tiledesk's passport reads it). What a
    token stands for, and how it is checked, is `accounts.tokens`' business; a bad token is a 401."""

    keyword = "jwt"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise AuthenticationFailed("Invalid JWT header: give `JWT <token>`, without spaces in the token.")
        try:
            token = header[1].decode("ascii")
        except UnicodeError:
            raise AuthenticationFailed("Invalid JWT header: the token has characters a JWT never has.")
        try:
            return tokens.authenticate(token)
        except tokens.InvalidToken as error:
            raise AuthenticationFailed(str(error))

    def authenticate_header(self, request) -> str:
        return 'JWT realm="api"'
