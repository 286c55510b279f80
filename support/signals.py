"""Domain signals that `post_save`/`post_delete` cannot express. The webhook layer listens to them."""

from django.dispatch import Signal

# Sent with `instance=<Request>` after a conversation is closed.
request_closed = Signal()

# Sent with `instance=<Project>` inside the transaction that deletes the project, once it is closed.
project_deleted = Signal()
