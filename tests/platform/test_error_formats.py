"""The shared exception-to-envelope mapping (owt.errors)."""

from rest_framework import exceptions

from owt.errors import OWT_ERRORS, NotFound, ServerError, classify, describe_validation_error


def test_validation_message_names_the_field():
    detail = {"views": [{}, {"video": {"format": ["Invalid codec"]}}]}
    assert describe_validation_error(detail) == "views[1].video.format: Invalid codec"


def test_owt_codes_follow_the_spec_table():
    def code(exc):
        kind, status, message, api_code = classify(exc)
        return status, OWT_ERRORS.body(kind=kind, status=status, message=message, code=api_code)["error"]["code"]

    assert code(exceptions.ParseError()) == (400, 1301)
    assert code(exceptions.ValidationError({"name": ["required"]})) == (400, 1301)
    assert code(exceptions.AuthenticationFailed()) == (401, 1101)
    assert code(exceptions.PermissionDenied()) == (403, 1102)
    assert code(NotFound("Room not found", code=1003)) == (404, 1003)
    assert code(ServerError()) == (500, 2001)
    assert code(RuntimeError("boom")) == (500, 2001)
