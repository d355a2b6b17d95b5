// Runs before require.js, MathJax and the widget manager (first entry of nb_ipywidgets_js).
(function () {
  var s = document.currentScript;
  var base = s ? s.src.replace(/widgets-config\.js.*$/, "jupyter-widgets") : "_static/jupyter-widgets";

  // 1. The theme's FontAwesome replaces <i> icons by SVG, which breaks the widgets' Play button.
  window.FontAwesomeConfig = { autoReplaceSvg: "nest" };

  // 2. The widget manager is a set of named AMD modules whose fonts resolve relative to the page:
  //    map the module names onto the self-hosted folder (a global `require` is read by require.js).
  window.require = { paths: { "@jupyter-widgets/html-manager/dist": base, "@jupyter-widgets": base } };

  // 3. The widget controls typeset labels with the MathJax 2 API (MathJax.Hub.Queue); the book
  //    loads MathJax 3. Give every MathJax object a small Hub that forwards to MathJax 3.
  var hub = {
    Queue: function (cmd) {
      var mj = window.MathJax;
      var el = cmd && cmd[2];
      if (el && mj && mj.typesetPromise) { mj.typesetPromise([el]).catch(function () {}); }
    }
  };
  var current = window.MathJax;
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (v) {
      current = v;
      if (v && typeof v === "object" && v.version && !v.Hub) { v.Hub = hub; }
    }
  });

  // 4. A Stack (the frames of a precomputed slider) posts a queued resize message to the child it
  //    has just shown; when the slider moves again before the message loop runs, that child is
  //    disposed first and @jupyter-widgets/base 6 throws "Cannot read properties of null (reading
  //    'processLuminoMessage')". A disposed widget has no view left to tell: drop the message.
  //    (The widget modules are defined by embed-amd.js, which has run by DOMContentLoaded.)
  //    Still needed with @jupyter-widgets/html-manager 1.0.15 (base 6.0.12): its dispose() still
  //    sets _view to null and processMessage still calls _view.processLuminoMessage unguarded;
  //    tests/test_book.py calls the unguarded method on a disposed frame and expects the error.
  document.addEventListener("DOMContentLoaded", function () {
    if (typeof window.require !== "function") { return; }
    window.require(["@jupyter-widgets/base"], function (widgetsBase) {
      [widgetsBase.JupyterLuminoWidget, widgetsBase.JupyterLuminoPanelWidget].forEach(function (cls) {
        if (!cls || cls.prototype.__aimcDisposedGuard) { return; }
        var processMessage = cls.prototype.processMessage;
        cls.prototype.processMessage = function (msg) {
          if (this._view === null || this._view === undefined) { return; }
          return processMessage.call(this, msg);
        };
        cls.prototype.__aimcDisposedGuard = true;
        cls.prototype.__aimcUnguardedProcessMessage = processMessage;  // for the browser test
      });
    });
  });
})();
