"""This API's error envelope (see owt.errors)."""

from owt.errors import ErrorFormat

ERROR_FORMAT = ErrorFormat()
