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

  // The exposures log: re-fetch the server-rendered rows every few seconds while the tab is visible.
  document.querySelectorAll("[data-refresh]").forEach(function (section) {
    var url = section.getAttribute("data-refresh");
    var every = Number(section.getAttribute("data-refresh-ms")) || 5000;
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (answer) { return answer.ok ? answer.text() : null; })
        .then(function (html) { if (html !== null) { section.innerHTML = html; } })
        .catch(function () { /* offline for a moment: try again next time */ });
    }, every);
  });
})();
