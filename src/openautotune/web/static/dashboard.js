// Draws every figure the server embedded as JSON (<script type="application/json" id="figure-...">).
(function () {
  "use strict";
  var config = { responsive: true, displayModeBar: false };
  document.querySelectorAll(".chart[data-figure]").forEach(function (element) {
    var source = document.getElementById(element.getAttribute("data-figure"));
    if (!source || typeof Plotly === "undefined") { return; }
    var figure = JSON.parse(source.textContent);
    Plotly.newPlot(element, figure.data, figure.layout, config);
  });
})();
