"""Object ids shaped like Tiledesk's (MongoDB ObjectId: 24 hex characters, time-ordered), so that
clients written for Tiledesk see the strings they expect and new rows land at the end of indexes."""

import secrets
import time
import uuid


def new_object_id() -> str:
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


def new_lead_id() -> str:
    """A requester id for a lead created without one, as Tiledesk makes it (a uuid4)."""
    return str(uuid.uuid4())
