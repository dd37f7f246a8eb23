# make test   the README's test command: the whole suite, with the race detector
# make bench  the load harness (bench/): 3-4 minutes on 2 cores, prints one table;
#             needs wrk, nginx and redis-server (apt-get install -y wrk nginx-light redis-server)
#             make bench BENCHFLAGS=-quick   one short round, a smoke test

BENCHFLAGS ?=

.PHONY: test bench

test:
	go test -race ./...

bench:
	go run ./bench $(BENCHFLAGS)
