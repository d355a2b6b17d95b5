// Runs before require.js and the widget manager.
// 1. The theme's FontAwesome replaces <i> icons by SVG, which breaks the widgets' Play button.
window.FontAwesomeConfig = { autoReplaceSvg: "nest" };
// 2. The widget manager's fonts are loaded relative to the page: point them at _static/widgets.
(function () {
  var s = document.currentScript;
  var base = s ? s.src.replace(/widgets-config\.js.*$/, "widgets/") : "_static/widgets/";
  window.__webpack_public_path__ = base;
  window.aimcWidgetsBase = base;
})();
