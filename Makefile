# make test   the README's test command: the whole suite, with the race detector
# make bench  the load harness (bench/): 3-4 minutes on 2 cores, prints one table;
#             needs wrk, nginx and redis-server (apt-get install -y wrk nginx-light redis-server)
#             make bench BENCHFLAGS=-quick   one short round, a smoke test
# make soak   bench soak: 10 minutes of mixed traffic (sign-ins, proxied requests, refreshes,
#             sign-outs, websocket streams) against cookie and Redis mode at once; prints RSS,
#             goroutines, open FDs and p99 over time and fails (exit 1) on a failed request or
#             growth without bound (docs/operations.md, "Soak"); needs redis-server
#             make soak SOAKFLAGS='-duration 2m -interval 15s'   a shorter look
# make screenshots  refresh docs/screenshots/ (the README's and docs' pictures) from the
#             real-browser test, e2e TestBrowser; about a minute. Needs Debian's chromium
#             (apt-get install -y chromium) and axe-core from npm, both as .ci/run installs them;
#             CI=true so that a missing one fails rather than skips

BENCHFLAGS ?=
SOAKFLAGS ?=

.PHONY: test bench soak screenshots

test:
	go test -race -timeout 30m ./...

bench:
	go run ./bench $(BENCHFLAGS)

soak:
	go run ./bench soak $(SOAKFLAGS)

screenshots:
	PORTCULLIS_SCREENSHOTS=$(CURDIR)/docs/screenshots CI=true go test ./e2e -run '^TestBrowser$$' -count=1 -v
