package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTokenPollInterval is how often a TokenFile looks for a new token:
// Alertmanager reads its credentials_file at every notification, so a
// rotated token is sent at once and refused until it is picked up here.
// A stat every two seconds costs nothing.
const DefaultTokenPollInterval = 2 * time.Second

// Token is the bearer token requests must carry. It can be replaced while
// requests are served; each request is judged by the token current when it
// arrives.
type Token struct {
	hash atomic.Pointer[[sha256.Size]byte]
}

// NewToken returns a Token holding token.
func NewToken(token []byte) *Token {
	t := &Token{}
	t.set(token)
	return t
}

func (t *Token) set(token []byte) {
	// Only the hash is kept: comparing hashes takes the same time whatever
	// the lengths of the tokens compared.
	h := sha256.Sum256(token)
	t.hash.Store(&h)
}

// revoke makes the token match nothing until the next set.
func (t *Token) revoke() { t.hash.Store(nil) }

func (t *Token) matches(got string) bool {
	want := t.hash.Load()
	if want == nil {
		return false
	}
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], want[:]) == 1
}

// ReadTokenFile reads a bearer token the way Alertmanager reads its
// credentials_file: surrounding whitespace, such as the final newline, is
// not part of the token. It refuses, as ssh refuses a private key, a file
// that others may read or write (group-readable, to share it with
// Alertmanager's group, is fine), and an empty token, which would let every
// request in.
func ReadTokenFile(path string) ([]byte, error) {
	token, _, err := readTokenFile(path)
	return token, err
}

// fileVersion tells one content of a file from the next without reading it:
// a rewrite changes its size or times, a rename over it its inode, a chmod
// its ctime.
type fileVersion struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

func versionOf(fi fs.FileInfo) fileVersion {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileVersion{size: fi.Size(), mtime: syscall.NsecToTimespec(fi.ModTime().UnixNano())}
	}
	return fileVersion{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

// errExposed means the token file is readable or writable by others: the
// token in it must be taken as known to them.
var errExposed = errors.New("readable or writable by others")

// readTokenFile reads the token and the version of the file it came from,
// taken from the open file so that the two agree. O_NONBLOCK keeps a FIFO
// put in the file's place from holding the open (and every reload after
// it) until a writer comes; fstat then refuses it.
func readTokenFile(path string) ([]byte, fileVersion, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fileVersion{}, fmt.Errorf("reading bearer token: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileVersion{}, fmt.Errorf("reading bearer token: %w", err)
	}
	v := versionOf(fi)
	if !fi.Mode().IsRegular() {
		return nil, v, fmt.Errorf("bearer token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o006 != 0 {
		return nil, v, fmt.Errorf("bearer token file %s is %w (mode %04o): "+
			"run chmod o-rwx on it (0600, or 0640 to share it with Alertmanager's group)", path, errExposed, perm)
	}
	// A token is short; a huge file is a mistake, not a token.
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, v, fmt.Errorf("reading bearer token: %w", err)
	}
	token := bytes.TrimSpace(b)
	if len(token) == 0 {
		return nil, v, fmt.Errorf("bearer token file %s is empty", path)
	}
	return token, v, nil
}

// TokenFile is a Token read from a file and read again on Reload (the
// command calls it on SIGHUP) and when the file changes (Watch), so that a
// token is rotated without a restart. A reload that fails keeps the token
// in use: a half-written file must not lock Alertmanager out. A file that
// others can read is the exception: its token may be known, so no token is
// accepted until the file is fixed.
type TokenFile struct {
	path   string
	token  *Token
	logger *slog.Logger

	mu   sync.Mutex // serialises reloads
	seen fileVersion

	reloads        *prometheus.CounterVec
	lastSuccessful prometheus.Gauge
}

// Reload results, the values of the result label of
// steam_remediator_token_reloads_total.
const (
	reloadSuccess = "success"
	reloadFailure = "failure"
)

// LoadTokenFile reads the token in path and registers the reload metrics on
// reg. An unusable file is an error: the remediator must not start with a
// token nobody can send, or with none.
func LoadTokenFile(path string, reg prometheus.Registerer, logger *slog.Logger) (*TokenFile, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	token, v, err := readTokenFile(path)
	if err != nil {
		return nil, err
	}
	f := &TokenFile{path: path, token: NewToken(token), logger: logger, seen: v}
	f.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steam_remediator_token_reloads_total",
		Help: "Reloads of the webhook's bearer token file after it changed or on SIGHUP, by result; a failed reload keeps the previous token, except that a file others can read makes every token refused until it is fixed.",
	}, []string{"result"})
	f.reloads.WithLabelValues(reloadSuccess)
	f.reloads.WithLabelValues(reloadFailure)
	f.lastSuccessful = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "steam_remediator_token_last_reload_successful",
		Help: "Whether the last reload of the webhook's bearer token file succeeded (1) or failed (0).",
	})
	f.lastSuccessful.Set(1)
	if reg != nil {
		for _, c := range []prometheus.Collector{f.reloads, f.lastSuccessful} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("webhook: registering token metrics: %w", err)
			}
		}
	}
	return f, nil
}

// Token returns the token, which reloads replace in place.
func (f *TokenFile) Token() *Token { return f.token }

// Reload reads the file again. trigger says why, for the log.
func (f *TokenFile) Reload(trigger string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reload(trigger)
}

func (f *TokenFile) reload(trigger string) error {
	token, v, err := readTokenFile(f.path)
	// Remembered even on failure, so that a bad file is reported once and
	// not at every poll; the next change to it is tried again.
	f.seen = v
	if err != nil {
		f.reloads.WithLabelValues(reloadFailure).Inc()
		f.lastSuccessful.Set(0)
		if errors.Is(err, errExposed) {
			f.token.revoke()
			f.logger.Error("Reloading the bearer token failed; refusing every request until the file is fixed",
				"path", f.path, "trigger", trigger, "err", err)
			return err
		}
		f.logger.Error("Reloading the bearer token failed; keeping the previous token", "path", f.path, "trigger", trigger, "err", err)
		return err
	}
	changed := !f.token.matches(string(token))
	f.token.set(token)
	f.reloads.WithLabelValues(reloadSuccess).Inc()
	f.lastSuccessful.Set(1)
	f.logger.Info("Reloaded the bearer token", "path", f.path, "trigger", trigger, "changed", changed)
	return nil
}

// changed reports whether the file is not the one last read. A file that
// cannot be stat'ed is compared as the zero version, so that it is reloaded
// (and the failure reported) once when it disappears and again when it
// comes back.
func (f *TokenFile) changed() bool {
	var v fileVersion
	if fi, err := os.Stat(f.path); err == nil {
		v = versionOf(fi)
	} else if !errors.Is(err, fs.ErrNotExist) {
		f.logger.Debug("Cannot stat the bearer token file", "path", f.path, "err", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return v != f.seen
}

// Watch reloads the token whenever the file changes, looking every
// interval (DefaultTokenPollInterval if 0), until ctx ends.
func (f *TokenFile) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultTokenPollInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if f.changed() {
				_ = f.Reload("file changed")
			}
		}
	}
}
