"""The messaging exception hierarchy."""

from __future__ import annotations


class MessagingError(Exception):
    """Base of every error raised on purpose by `shop_common.messaging`."""


class EnvelopeError(MessagingError):
    """An incoming message is not a CloudEvent we can read (it goes to the parking queue)."""


class PermanentError(MessagingError):
    """Raise from a handler when retrying cannot help: the message is parked at once."""


class BrokerUnavailableError(MessagingError):
    """The broker connection failed mid-batch; the relay reconnects after a backoff."""
