"""Which published names a subscription's `events` take: exact names, `prefix.*` wildcards (any
name under the prefix, at any depth) and `*` (every name but `operator.select`, which is asked
synchronously and never published).

One occurrence is published under several names (a message is `message.create` and its channel
sub-events); a subscription gets one delivery for it, named by the most specific of the names its
patterns take, so a receiver subscribed to `message.*` still learns the channel."""

from collections.abc import Iterable

from . import events

ALL = "*"
WILDCARD_SUFFIX = ".*"


def is_wildcard(pattern: str) -> bool:
    return pattern == ALL or pattern.endswith(WILDCARD_SUFFIX)


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be one of a subscription's `events`, or None."""
    if pattern == ALL or events.is_valid_event_name(pattern):
        return None
    if pattern.endswith(WILDCARD_SUFFIX):
        prefix = pattern[: -len(WILDCARD_SUFFIX)] + "."
        if any(name.startswith(prefix) for name in _KNOWN_PREFIXES) or any(
            prefix.startswith(family) and events.is_valid_event_name(prefix[:-1]) for family in events.FAMILIES
        ):
            return None
        return f"No event name matches {pattern!r}: a wildcard is a prefix of names from GET /api/events/ and '.*'."
    return (
        f"Unknown event {pattern!r}: use a name from GET /api/events/, message.create.request.channel.<channel>, "
        "message.create.channel.<channel>, event.emit.<name>, a wildcard such as 'request.*', or '*'."
    )


# The names and open families a wildcard may stand before (`message.*`, `message.create.request.*`...).
_KNOWN_PREFIXES = tuple(event.name.split("<")[0] for event in events.CATALOG if event.name != events.OPERATOR_SELECT)


def matches(pattern: str, name: str) -> bool:
    if name == events.OPERATOR_SELECT:
        return pattern == name
    if pattern == ALL:
        return True
    if pattern.endswith(WILDCARD_SUFFIX):
        return name.startswith(pattern[:-1])
    return pattern == name


def specificity(name: str) -> int:
    return name.count(".")


def most_specific_match(patterns: Iterable[str], names: list[str]) -> str | None:
    """The most specific of `names` (most segments; the first published on a tie) that one of
    `patterns` takes, or None."""
    patterns = list(patterns)
    best = None
    for name in names:
        if any(matches(pattern, name) for pattern in patterns) and (
            best is None or specificity(name) > specificity(best)
        ):
            best = name
    return best


def example_event(pattern: str) -> str:
    """A concrete name `pattern` takes, for a test event: the pattern itself when it is a name, else
    the first catalog name it takes (placeholders given an example value)."""
    if not is_wildcard(pattern):
        return pattern
    for event in events.CATALOG:
        name = event.name.replace("<channel>", "chat21").replace("<name>", "typing.start")
        if matches(pattern, name):
            return name
    return pattern[: -len(WILDCARD_SUFFIX)] + ".typing.start"  # under event.emit.<name>: event.emit.x.*
