"""How this page is opened in headless Debian Chromium (tests, benchmark screenshots).

Without the background-networking flags Chromium keeps trying to reach
Google's hosts, which this offline machine refuses.
"""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
