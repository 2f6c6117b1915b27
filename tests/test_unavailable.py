from django.db import OperationalError
from django.test import RequestFactory

from remora_admin.middleware import DatabaseUnavailableMiddleware


def test_a_database_that_does_not_answer_gives_a_503_in_words_without_a_traceback():
    def view(request):
        raise OperationalError("(2003, \"Can't connect to MySQL server on '127.0.0.1'\")")

    response = DatabaseUnavailableMiddleware(view)(RequestFactory().get("/"))

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    body = response.content.decode()
    assert "database does not answer" in body
    assert "Nothing you submitted was saved" in body
    assert "Traceback" not in body and "2003" not in body


def test_other_errors_are_not_dressed_up_as_unavailability():
    def view(request):
        raise ValueError("a bug")

    middleware = DatabaseUnavailableMiddleware(view)

    try:
        middleware(RequestFactory().get("/"))
    except ValueError as exc:
        assert str(exc) == "a bug"
    else:
        raise AssertionError("the ValueError was swallowed")
