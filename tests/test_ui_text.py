"""Texts the UI shows: messages name the user's own files, never the server's folders."""

from __future__ import annotations

from serdemo.app.ui.widgets import own_names as _own_names


def test_messages_show_the_file_name_not_the_upload_folder():
    message = "/tmp/gradio/3f9a1c0d/notes.wav: not a readable audio file (Format not recognised)"
    assert _own_names(message) == "notes.wav: not a readable audio file (Format not recognised)"
    assert _own_names("choose a .csv or .jsonl file") == "choose a .csv or .jsonl file"  # nothing to cut
    assert _own_names("a/b.wav and c.zip") == "a/b.wav and c.zip"  # relative names stay as they are
