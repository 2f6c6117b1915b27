"""A run's output through the API: from an offset, a character cut between two stored pieces
held back until it is whole, nothing lost when the run ends between two questions."""

import uuid
from datetime import timedelta

import pytest
from django.test import Client

from hosts.models import Host
from jobs.models import JobRun, OutputChunk, RunState
from remora_admin.access import tokens

pytestmark = pytest.mark.django_db


@pytest.fixture
def asker(carol):
    _, raw = tokens.create(carol, name="output", scope="read", lifetime=timedelta(hours=1))
    client = Client()

    def ask(run: JobRun, offset: int = 0, wait: float = 0) -> dict:
        url = f"/api/runs/{run.pk}/output/?offset={offset}&wait={wait}"
        answer = client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert answer.status_code == 200, answer.content
        return answer.json()

    return ask


def _run(requested_by, state=RunState.RUNNING) -> JobRun:
    return JobRun.objects.create(
        batch=uuid.uuid4(), recipe="host_health", script="true", timeout=60, state=state,
        host=Host.objects.get(name="sunjammer"), requested_by=requested_by,
    )  # fmt: skip


def _store(run: JobRun, *pieces: bytes) -> None:
    offset = sum(len(c.data) for c in OutputChunk.objects.filter(run=run))
    for piece in pieces:
        OutputChunk.objects.create(run=run, offset=offset, data=piece)
        offset += len(piece)


def test_a_character_cut_between_two_pieces_waits_until_it_is_whole(asker, carol):
    run = _run(carol)
    word = "déjà vu\n".encode()
    _store(run, word[:2])  # "d" and the first byte of "é"

    first = asker(run)
    assert first == {**first, "text": "d", "offset": 0, "next_offset": 1, "finished": False}

    _store(run, word[2:])
    second = asker(run, first["next_offset"])
    assert second["text"] == "éjà vu\n"
    assert second["offset"] == 1 and second["next_offset"] == len(word)

    quiet = asker(run, second["next_offset"], wait=0.2)  # nothing new: the same place
    assert quiet["text"] == "" and quiet["next_offset"] == len(word)


def test_a_finished_run_gives_all_its_output_and_says_so(asker, carol):
    run = _run(carol, state=RunState.FAILED)
    _store(run, b"one\n", b"two \xe2\x82")  # ends cut short: nothing more will come
    run.exit_code = 3
    run.save()

    answer = asker(run, 0, wait=5)
    assert answer["finished"] is True and answer["exit_code"] == 3
    assert answer["text"] == "one\ntwo \ufffd" and answer["next_offset"] == 10


def test_an_offset_past_the_end_or_bad_is_refused_or_empty(asker, carol, client):
    run = _run(carol)
    _store(run, b"abc")
    assert asker(run, 99)["text"] == ""
    _, raw = tokens.create(carol, name="bad", scope="read", lifetime=timedelta(hours=1))
    bad = client.get(f"/api/runs/{run.pk}/output/?offset=-1", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert bad.status_code == 400 and "offset" in bad.json()
