"""The Textual dashboard: renders Ticks, turns keys into RunConfig changes. The core never imports this."""
