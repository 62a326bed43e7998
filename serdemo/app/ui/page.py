"""What the page carries besides components: title, CSS, keyboard and click scripts, raw microphone."""

from __future__ import annotations

import json
import logging
from typing import Any

import gradio as gr

from serdemo.labels import EMOTIONS

LOG = logging.getLogger("serdemo")

TITLE = "serdemo: speech emotion recognition for a new language"
# ... and a line style and marker of its own, so no plot tells emotions apart by colour alone
EMOTION_DASHES = dict(zip(EMOTIONS, ["solid", "dash", "dot", "dashdot", "longdash"], strict=True))
EMOTION_MARKERS = dict(zip(EMOTIONS, ["circle", "square", "diamond", "triangle-up", "x"], strict=True))
SHORTCUT_KEYS = {str(i + 1): f"label-{emotion}" for i, emotion in enumerate(EMOTIONS)} | {
    "s": "label-skip",
    "u": "label-undo",
}

# Keyboard shortcuts of the Label tab. Gradio 6 takes page JS at launch(); it runs once on load.
# Keys only act while the Label tab is visible and never while the user types into a field.
KEYBOARD_JS = """
() => {
  const keys = KEYS;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const tag = (target && target.tagName) || "";
    if (["INPUT", "TEXTAREA", "SELECT"].includes(tag) || (target && target.isContentEditable)) return;
    const id = keys[event.key.toLowerCase()];
    if (!id) return;
    let button = document.getElementById(id);
    if (button && button.tagName !== "BUTTON") button = button.querySelector("button");
    // offsetParent is null while the Label tab is hidden: shortcuts must not fire from other tabs
    if (!button || button.offsetParent === null || button.disabled) return;
    event.preventDefault();
    button.click();
  });
}
""".replace("KEYS", json.dumps(SHORTCUT_KEYS))

# Explore: clicking a point plays its clip. Gradio's Plot has no click event, so the page hooks
# plotly's own plotly_click on the two figures and writes the point's key (customdata[0]) into a
# hidden textbox, whose change event asks the server for the audio.
CLICK_TO_PLAY_JS = """
() => {
  const hook = () => {
    const plots = "#explore-before .js-plotly-plot, #explore-after .js-plotly-plot";
    for (const plot of document.querySelectorAll(plots)) {
      if (plot.dataset.serdemoClick || typeof plot.on !== "function") continue;
      plot.dataset.serdemoClick = "1";
      plot.on("plotly_click", (data) => {
        const key = data && data.points && data.points[0] && data.points[0].customdata;
        const button = document.querySelector("#explore-play-clicked button, button#explore-play-clicked");
        if (!key || !button) return;
        const value = Array.isArray(key) ? String(key[0]) : String(key);
        if (!value.startsWith("t:") && !value.startsWith("s:")) return;
        window.serdemoClickedPoint = value;
        button.click();
      });
    }
  };
  setInterval(hook, 500);
}
"""

CSS = """
#status { font-size: 0.9em; }
/* five label buttons side by side, however narrow the column */
.label-buttons { flex-wrap: nowrap !important; gap: 4px !important; }
.label-buttons > * { min-width: 0 !important; flex: 1 1 0 !important; }
.label-buttons button { padding-left: 0.2em; padding-right: 0.2em; }
"""


# Gradio asks for the microphone with getUserMedia({audio: true}), which lets the browser apply automatic
# gain, noise suppression and echo cancellation: they pump the level and smear the pitch and energy contours
# the emotion is heard in, and training audio has none of them. Gradio has no setting for the constraints,
# so this script, run before the app's own code, asks for the raw signal in every audio request.
RAW_MICROPHONE_HEAD = """
<script>
(() => {
  const media = navigator.mediaDevices;
  if (!media || !media.getUserMedia || media.getUserMedia.serdemoRaw) return;
  const original = media.getUserMedia.bind(media);
  const raw = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
  const patched = (constraints) => {
    if (constraints && constraints.audio) {
      const audio = typeof constraints.audio === "object" ? constraints.audio : {};
      constraints = { ...constraints, audio: { ...raw, ...audio } };
    }
    return original(constraints);
  };
  patched.serdemoRaw = true;
  media.getUserMedia = patched;
})();
</script>
"""


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch`` that Gradio 6 no longer takes in ``gr.Blocks(...)``."""
    js = f"() => {{ ({KEYBOARD_JS})(); ({CLICK_TO_PLAY_JS})(); }}"
    # Soft's hint text (info under a field, placeholders) is ~2.5:1 on white; WCAG AA asks 4.5:1
    # (gray-600 #4b5563: 7.6:1; gray-500 #6b7280: 4.8:1)
    theme = gr.themes.Soft().set(
        block_info_text_color="*neutral_600",
        input_placeholder_color="*neutral_500",
        block_info_text_color_dark="*neutral_300",
    )
    return {"js": js, "css": CSS, "theme": theme, "head": RAW_MICROPHONE_HEAD}
