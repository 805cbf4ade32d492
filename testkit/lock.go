package testkit

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// LockMode is how a WriteLock's transaction begins.
type LockMode string

const (
	// Exclusive keeps other connections from reading too.
	Exclusive LockMode = "EXCLUSIVE"
	// Immediate lets others read but not write, as Steam's own write
	// transactions do in its rollback journal.
	Immediate LockMode = "IMMEDIATE"
)

// WriteLock is a write transaction held open on a connection of its own.
type WriteLock struct {
	conn *sql.Conn
	once sync.Once
	err  error
}

// TakeWriteLock begins a transaction in mode on a connection of db's own.
// It needs no testing.TB, so a test's goroutine may hold one too.
func TakeWriteLock(ctx context.Context, db *sql.DB, mode LockMode) (*WriteLock, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("taking the write lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN "+string(mode)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("taking the write lock (BEGIN %s): %w", mode, err)
	}
	return &WriteLock{conn: conn}, nil
}

// Exec runs a statement inside the held transaction.
func (l *WriteLock) Exec(query string, args ...any) error {
	if _, err := l.conn.ExecContext(context.Background(), query, args...); err != nil {
		return fmt.Errorf("%s: %w", query, err)
	}
	return nil
}

// Commit ends the transaction keeping what Exec wrote.
func (l *WriteLock) Commit() error { return l.end("COMMIT") }

// Release ends the transaction rolling back. Only the first Commit or
// Release ends it; later calls return its error.
func (l *WriteLock) Release() error { return l.end("ROLLBACK") }

func (l *WriteLock) end(stmt string) error {
	l.once.Do(func() {
		if _, err := l.conn.ExecContext(context.Background(), stmt); err != nil {
			l.err = fmt.Errorf("releasing the write lock (%s): %w", stmt, err)
		}
		l.conn.Close()
	})
	return l.err
}
