"""The About tab: what the numbers mean and what the tool is not (a measurement, not a diagnosis)."""

from __future__ import annotations

import gradio as gr

from monitor import DISCLAIMER

ABOUT = f"""
### About these numbers
**{DISCLAIMER}** It measures a recording; it does not diagnose or grade disease.

- **Eye opening** (palpebral fissure height at the pupil) and **MRD1** (upper lid margin above the pupil
  centre) in millimetres, scaled by the iris (11.7 mm unless set per person).
- **Expression strength** is a 0–1 intensity from the face model's blendshapes, not a validated score.
- **Fatigability**: the eye opening over each 30 s sustained-gaze step; the drop is the first 3 s against the last 3 s.
- **Trend flag**: a session worse than the person's own baseline by a set amount (1 mm for the eyelids);
  the tool's threshold, about 4× its measured noise, not a clinical cut-off.

Quality checks (one face, frontal, distance, light, eyes visible) must hold for a step to count.
Definitions, sources and limits: docs/app.md and docs/measures.md in the project.
"""


def build() -> gr.Markdown:
    with gr.Tab("About", id="about"):
        return gr.Markdown(ABOUT)
