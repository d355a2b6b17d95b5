#!/usr/bin/env bash
# Install the pinned widget JavaScript from npm and copy what the built book needs into
# book/_static/widgets/ (git-ignored), so the static site shows widgets without any CDN.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../book/_static/widgets"
command -v npm >/dev/null || { echo "npm is required to self-host the widget JavaScript (apt-get install npm)" >&2; exit 1; }
(cd "$here" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
dist="$here/node_modules/@jupyter-widgets/html-manager/dist"
rm -rf "$out" && mkdir -p "$out"
cp "$here/node_modules/requirejs/require.js" "$out/"
cp "$dist/embed-amd.js" "$dist"/*.embed.js "$out/"
cp "$dist"/*.woff "$dist"/*.woff2 "$dist"/*.ttf "$dist"/*.eot "$dist"/*.svg "$out/"
echo "widget JavaScript installed in $out"
