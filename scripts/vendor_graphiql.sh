#!/usr/bin/env bash
# Re-vendor GraphiQL's browser assets into cxgraph/api/static/graphiql/ from the npm
# registry (npm pack of pinned versions; the production UMD builds strawberry's own
# GraphiQL page loads from a CDN), gzip-compressed: `cxgraph serve` sends them as they are
# (Content-Encoding: gzip), so GraphiQL works with no network. Run from the repo root.
set -euo pipefail
GRAPHIQL=3.8.3 REACT=18.2.0
dest=cxgraph/api/static/graphiql
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null)
for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  mkdir -p "$tmp/$pkg" && tar xzf "$tmp/$pkg.tgz" -C "$tmp/$pkg"
done
gz() { gzip -9n -c "$1" > "$dest/$2.gz"; }
gz "$tmp/react-$REACT/package/umd/react.production.min.js" react.production.min.js
gz "$tmp/react-dom-$REACT/package/umd/react-dom.production.min.js" react-dom.production.min.js
gz "$tmp/graphiql-$GRAPHIQL/package/graphiql.min.js" graphiql.min.js
gz "$tmp/graphiql-$GRAPHIQL/package/graphiql.min.css" graphiql.min.css
{
  echo "GraphiQL $GRAPHIQL, React $REACT and ReactDOM $REACT (MIT licence), from the npm registry"
  echo "by scripts/vendor_graphiql.sh. sha256 of the uncompressed files:"
  for f in "$dest"/*.gz; do
    echo "$(gunzip -c "$f" | sha256sum | cut -d' ' -f1)  $(basename "${f%.gz}")"
  done
  echo
  cat "$tmp/graphiql-$GRAPHIQL/package/LICENSE"
} > "$dest/VENDORED.txt"
ls -l "$dest"
