"""The SFU: aiortc peer connections that forward publishers' encoded frames to subscribers."""
