"""Pieces every tab uses: error messages for users, sessions, store-backed pickers, the login box."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any

import gradio as gr

from serdemo.app.config import NothingToDoError, ServiceError
from serdemo.app.config import scrub as scrub_paths
from serdemo.app.service import Service
from serdemo.app.ui.page import LOG


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show a user-caused error (bad file, nothing to label, round running) as a message, not a traceback.

    Messages never name server folders (upload paths, the data folder); anything unexpected is logged
    here with its traceback and the client hears only that it failed. An action with nothing to act on
    (a label key with no clip on screen) gets a warning and leaves every output as it was: an error
    would put an "Error" badge on each of them.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except NothingToDoError as notice:
            gr.Warning(own_names(scrub_paths(str(notice))))
            return gr.skip()  # one skip stands for every output
        except (ServiceError, ValueError) as error:  # AudioError and ConfigError are ValueErrors
            raise gr.Error(own_names(scrub_paths(str(error))), print_exception=False) from None
        except Exception:
            LOG.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                f"{fn.__name__.replace('_', ' ')} failed unexpectedly; the server log has the details",
                print_exception=False,
            ) from None

    return wrapper


def session_of(request: gr.Request | None) -> str | None:
    """The Gradio session of a request (a browser tab or an API client), the key of its login."""
    return getattr(request, "session_hash", None)


# an absolute path in a message: uploads live in Gradio's temporary folder under a hash
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:'\"`]+/)+([^\s/:'\"`]+)")


def own_names(message: str) -> str:
    """A message with every absolute path cut to its file name: the user's own, not the server's folders.

    Example:
        >>> own_names("/tmp/gradio/3f9a/notes.wav: not a readable audio file")
        'notes.wav: not a readable audio file'
    """
    return ABSOLUTE_PATH.sub(r"\1", message)


@dataclasses.dataclass(frozen=True)
class VersionPicker:
    """A dropdown of model versions and the value it falls back to when its version is gone."""

    dropdown: gr.Dropdown
    default: Callable[[], str | None]


def store_dropdown(*args: Any, **kwargs: Any) -> gr.Dropdown:
    """A dropdown whose choices come from the store, so they grow after the page was built.

    It takes any value (the service checks it and says what exists), and its API description says
    "a string" rather than Gradio's enum of the choices known when the page was built, which clients
    would trust and which is empty in a fresh data folder. (Set on the instance: a Dropdown subclass
    would make Gradio write a .pyi file beside this module at import.)
    """
    dropdown = gr.Dropdown(*args, allow_custom_value=True, **kwargs)
    dropdown.api_info = lambda: {"type": "string"}  # type: ignore[method-assign]
    return dropdown


def login_box(service: Service) -> None:
    """Log in / out (only with SERDEMO_AUTH); also the /login and /logout API endpoints."""
    with gr.Accordion("Log in to label, adapt, import and export", open=True, visible=service.login_required):
        with gr.Row():
            user = gr.Textbox(label="User", max_lines=1, elem_id="login-user")
            password = gr.Textbox(label="Password", type="password", max_lines=1, elem_id="login-password")
            with gr.Column():
                log_in = gr.Button("Log in", variant="primary", elem_id="login-button")
                log_out = gr.Button("Log out", size="sm", elem_id="logout-button")
        message = gr.Markdown(elem_id="login-message")

    @user_errors
    def login(name: str, secret: str, request: gr.Request) -> tuple[str, str]:
        """Log this session in; labels, rounds, imports and exports then work under this user."""
        return service.login(session_of(request), name, secret), ""

    @user_errors
    def logout(request: gr.Request) -> str:
        """End this session's login."""
        return service.logout(session_of(request))

    log_in.click(login, [user, password], [message, password], api_name="login")
    password.submit(login, [user, password], [message, password], api_visibility="private")
    log_out.click(logout, None, message, api_name="logout")


def language_dropdown(
    service: Service,
    registry: list[gr.Dropdown],
    label: str = "Target language",
    info: str | None = None,
    elem_id: str | None = None,
    preset: bool = True,
) -> gr.Dropdown:
    r"""A language picker of the store\'s pools, registered so it follows new pools in every tab."""
    dropdown = store_dropdown(
        choices=service.languages(),
        value=service.default_language() if preset else None,
        label=label,
        info=info or "ISO 639-1 code, e.g. de, it, fr; type a new one to start a pool",
        filterable=True,
        elem_id=elem_id,
    )
    dropdown.serdemo_preset = preset  # read by the store refresh in build_app
    registry.append(dropdown)
    return dropdown
