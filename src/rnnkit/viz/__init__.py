"""See inside a language model: what its neurons do on a text, as one HTML page.

    rep = rnnkit.viz.report(model, vocab, text)      # the numbers (a Report)
    rnnkit.viz.write_html(rep, "report.html")       # one self-contained page
    rnnkit.viz.write_png(rep, "unit.png")           # a still image of one unit (matplotlib)

The page colours each token of the text by a chosen unit's activation (h, or the LSTM's
cell c; any layer and direction), lists the units that correlate most with simple features
of the text (position in the line, inside quotes or brackets, the entropy of the model's
next prediction), shows each layer's gate saturation (Karpathy, Johnson & Fei-Fei 2015)
and, on hover over a token, the model's top next-token predictions. The command is
``rnnkit viz CHECKPOINT TEXT_FILE -o report.html``.
"""

from .activity import FEATURES, Report, correlations, rank, report, text_features
from .page import page_data, render_html, write_html
from .picture import write_png

__all__ = ["FEATURES", "Report", "correlations", "page_data", "rank", "render_html", "report",
           "text_features", "write_html", "write_png"]
