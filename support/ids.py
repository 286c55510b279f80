"""Object ids shaped like Tiledesk's (MongoDB ObjectId: 24 hex characters, time-ordered), so that
clients written for Tiledesk see the strings they expect and new rows land at the end of indexes."""

import secrets
import time


def new_object_id() -> str:
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"
