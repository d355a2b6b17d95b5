#!/usr/bin/env bash
# Install the pinned widget JavaScript and MathJax from npm and copy what the built book needs into
# book/_static/jupyter-widgets/ and book/_static/mathjax/ (git-ignored): the static site shows
# widgets and equations without any CDN, offline.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../book/_static/jupyter-widgets"
command -v npm >/dev/null || { echo "npm is required to self-host the widget JavaScript (apt-get install npm)" >&2; exit 1; }
(cd "$here" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
dist="$here/node_modules/@jupyter-widgets/html-manager/dist"
rm -rf "$out" && mkdir -p "$out"
cp "$here/node_modules/requirejs/require.js" "$out/"
shopt -s nullglob  # 1.0.15 is one bundle; older releases also had code-split chunks (*.embed.js)
cp "$dist/embed-amd.js" "$dist"/*.embed.js "$out/"
cp "$dist"/*.woff "$dist"/*.woff2 "$dist"/*.ttf "$dist"/*.eot "$dist"/*.svg "$out/"
shopt -u nullglob
mj_src="$here/node_modules/mathjax/es5"
mj="$here/../book/_static/mathjax"
rm -rf "$mj" && mkdir -p "$mj/output/chtml"
cp "$mj_src/tex-mml-chtml.js" "$mj/"
cp -r "$mj_src/input" "$mj_src/ui" "$mj_src/a11y" "$mj_src/adaptors" "$mj/"
cp -r "$mj_src/output/chtml/fonts" "$mj/output/chtml/"
echo "widget JavaScript installed in $out, MathJax in $mj"
