"""The live chart: numeric telemetry fields over time, one line per device/module and
path (pyqtgraph: wheel and drag zoom, right-click for more; Pause holds the picture
while the points keep coming, Follow goes back to showing everything)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from twin_explorer.service.events.series import Plots
from twin_explorer.ui.common import theme
from twin_explorer.ui.common.tool_button import tool_button

MAX_REDRAWS_PER_SECOND = 20  # the stream hands over at most one batch per 50 ms anyway


class ChartWidget(QWidget):
    def __init__(self, plots: Plots, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("eventsChart")
        self.plots = plots
        self.plot_widget = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot_widget.setObjectName("eventsPlot")
        self.plot_widget.setToolTip(
            "Wheel to zoom, drag to move; right-click for more. Follow shows everything again."
        )
        self.plot_widget.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.plot_widget.addLegend(offset=(-10, 10))  # top right
        self.empty = QLabel("Choose a telemetry event in the list, then a field to plot")
        self.empty.setObjectName("eventsChartEmpty")
        self.pause_button = tool_button(
            "eventsChartPause", "Pause", "Hold the chart still; points keep being collected"
        )
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._paused)
        self.follow_button = tool_button(
            "eventsChartFollow", "Follow", "Zoom back out to every point and follow new ones"
        )
        self.follow_button.clicked.connect(self.follow)
        self.clear_button = tool_button(
            "eventsChartClear", "Clear Chart", "Stop plotting every field and forget the points"
        )
        self.clear_button.clicked.connect(plots.clear)
        self.counts = QLabel()
        self.counts.setObjectName("eventsChartCounts")
        self.counts.setToolTip("Fields plotted, lines drawn and points kept")

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.counts, 1)
        for button in (self.pause_button, self.follow_button, self.clear_button):
            bar.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.empty)
        layout.addWidget(self.plot_widget, 1)

        self._items: dict[str, pg.PlotDataItem] = {}
        self._unsubscribe = plots.changed.subscribe(lambda _none: self.redraw())
        self.destroyed.connect(lambda: self._unsubscribe())
        theme.on_change(self, self._colours)
        self._colours()
        self.redraw()

    @property
    def paused(self) -> bool:
        return self.pause_button.isChecked()

    def _paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        if not paused:
            self.redraw()

    def follow(self) -> None:
        self.plot_widget.enableAutoRange()
        self.redraw()

    def redraw(self) -> None:
        """Show the series as they are now (not while paused: the picture holds)."""
        if self.paused:
            return
        series = {s.name: s for s in self.plots}
        for name in [name for name in self._items if name not in series]:
            self.plot_widget.removeItem(self._items.pop(name))
        for index, (name, one) in enumerate(series.items()):
            item = self._items.get(name)
            if item is None:
                pen = pg.mkPen(pg.intColor(index, hues=9), width=2)
                item = self.plot_widget.plot(name=name, pen=pen, symbol="o", symbolSize=4)
                item.setSymbolBrush(pen.color())
                item.setSymbolPen(pen.color())
                self._items[name] = item
            item.setData(list(one.times), list(one.values))
        points = sum(len(s.values) for s in series.values())
        self.counts.setText(
            " · ".join(
                (
                    _count(len(self.plots.paths), "field"),
                    _count(len(series), "line"),
                    _count(points, "point"),
                )
            )
        )
        has_any = bool(self.plots.paths)
        self.empty.setVisible(not has_any)
        self.plot_widget.setVisible(has_any)

    def _colours(self) -> None:
        palette = self.palette()
        self.plot_widget.setBackground(palette.color(QPalette.ColorRole.Base))
        text = palette.color(QPalette.ColorRole.Text)
        for name in ("left", "bottom"):
            axis = self.plot_widget.getAxis(name)
            axis.setPen(text)
            axis.setTextPen(text)
        self.legend.setLabelTextColor(text)
        # The legend sits over the lines: a backing in the chart's colour keeps it legible.
        backing = palette.color(QPalette.ColorRole.Base)
        backing.setAlpha(210)
        self.legend.setBrush(backing)
        self.legend.setPen(palette.color(QPalette.ColorRole.Mid))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
