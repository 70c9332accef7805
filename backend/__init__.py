"""The Wan-Animate backend: a separate process (``python -m backend serve``) with
its own Python environment. Importing this package stays cheap and stdlib-only;
heavy modules (torch, diffusers, mediapipe) are imported by the stages that use them."""

__version__ = "0.1.0"
