# steam-overseer's build, as Prometheus projects do it with promu: version,
# revision, branch, build user and date go into prometheus/common/version
# through -ldflags, so that --version and every *_build_info series say
# which build runs.
#
#   make build   ./steam-overseer
#   make test    ./scripts/test (go vet and every test, with the real programs)
#   make deb     steam-overseer_$(VERSION)_amd64.deb, built with debhelper (debian/)

GO        ?= go
VERSION   := $(shell cat VERSION)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILD_USER ?= $(shell id -un)@$(shell hostname)
# SOURCE_DATE_EPOCH, when set, makes the build date (and so the binary)
# reproducible.
BUILD_DATE ?= $(shell date -u $(if $(SOURCE_DATE_EPOCH),-d @$(SOURCE_DATE_EPOCH)) +%Y%m%d-%H:%M:%S)

version_pkg := github.com/prometheus/common/version
LDFLAGS := -s -w \
	-X $(version_pkg).Version=$(VERSION) \
	-X $(version_pkg).Revision=$(REVISION) \
	-X $(version_pkg).Branch=$(BRANCH) \
	-X $(version_pkg).BuildUser=$(BUILD_USER) \
	-X $(version_pkg).BuildDate=$(BUILD_DATE)

DEB := steam-overseer_$(VERSION)_amd64.deb
# Where `make build` writes the binary (scripts/bench-exporter measures this build).
BIN ?= steam-overseer

.PHONY: all build test deb clean

all: build

# Always rebuilt: go's own cache makes an unchanged build cheap, and make
# cannot see every source file the binary depends on. Pure Go (SQLite is
# modernc.org/sqlite), so the binary is static and runs on any amd64 Linux.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/steam-overseer

test:
	./scripts/test

deb: build
	./scripts/build-deb steam-overseer $(DEB)

clean:
	rm -f steam-overseer steam-overseer_*.deb
