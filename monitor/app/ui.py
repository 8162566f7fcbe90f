"""The Gradio page: ``build_app(core) -> gr.Blocks`` assembles the five tabs over an AppCore, and
``HEAD`` is the page's script (the browser camera over WebRTC), given to the server with the page.

Tabs, one module each: Check (monitor/app/tab_check.py: set-up, live preview, instruction, controls,
live curves, and the timer), Results (tab_results.py), Review (tab_review.py), Photos (tab_photos.py) and
About (tab_about.py).
The live preview is an <img> on the MJPEG route (monitor/app/server.py), so no frame passes through
Gradio; the timer reads a snapshot of the check four times a second.
"""

from __future__ import annotations

import gradio as gr

from monitor import DISCLAIMER
from monitor.app import tab_about, tab_check, tab_photos, tab_results, tab_review
from monitor.app.core import AppCore

# the browser camera: getUserMedia → RTCPeerConnection → POST /webrtc/offer (no STUN: loopback/LAN)
HEAD = """<script>
window.fmConnectCamera = async function () {
  const status = document.getElementById('fm-cam-status');
  const say = (t) => { if (status) status.textContent = t; };
  try {
    if (window.fmPeer) { window.fmPeer.close(); }
    const media = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
    const pc = new RTCPeerConnection({iceServers: []});
    window.fmPeer = pc;
    media.getTracks().forEach((t) => pc.addTrack(t, media));
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((done) => {
      if (pc.iceGatheringState === 'complete') return done();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
    });
    const reply = await fetch('/webrtc/offer', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({sdp: pc.localDescription.sdp, type: pc.localDescription.type})});
    if (!reply.ok) { say('browser camera: the server refused the connection'); return; }
    await pc.setRemoteDescription(await reply.json());
    pc.addEventListener('connectionstatechange', () => say('browser camera: ' + pc.connectionState));
    say('browser camera: ' + pc.connectionState);
  } catch (e) { say('browser camera: ' + e.name + ' — ' + e.message); }
};
</script>"""


def build_app(core: AppCore) -> gr.Blocks:
    with gr.Blocks(title="facemonitor", analytics_enabled=False) as demo:
        gr.Markdown(f"# facemonitor\n**{DISCLAIMER}** Everything stays on this computer.")
        with gr.Tabs(selected="check") as tabs:
            check = tab_check.build(core)
            results = tab_results.build(core)
            review = tab_review.build(core)
            tab_photos.build(core)
            tab_about.build()
        tab_check.wire_timer(core, check, results, review, tabs)
    return demo
