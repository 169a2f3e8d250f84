package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strings"
)

// Most migrations are one portable SQL text for both databases. Where the
// two cannot share a statement (an identity column, triggers), a migration
// marks blocks for one database:
//
//	-- +dialect postgres
//	…PostgreSQL only…
//	-- +dialect sqlite
//	…SQLite only…
//	-- +dialect end
//
// dialectFS hands goose each file with the other database's blocks
// blanked out, so one file still tells the whole story of a version.
type dialectFS struct {
	fsys    fs.FS
	dialect string // "postgres" or "sqlite"
}

const dialectMark = "-- +dialect "

func (d dialectFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(d.fsys, name) }

func (d dialectFS) Open(name string) (fs.File, error) {
	f, err := d.fsys.Open(name)
	if err != nil || !strings.HasSuffix(name, ".sql") {
		return f, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var src bytes.Buffer
	if _, err := src.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	out, err := keepDialect(src.Bytes(), d.dialect)
	if err != nil {
		return nil, fmt.Errorf("migration %s: %w", name, err)
	}
	return &sqlFile{Reader: bytes.NewReader(out), info: sizedInfo{info, int64(len(out))}}, nil
}

// keepDialect blanks the lines of blocks marked for another database (and
// the marks themselves), keeping line numbers so goose's errors still
// point at the right line.
func keepDialect(src []byte, dialect string) ([]byte, error) {
	var out bytes.Buffer
	block := "" // "" outside a marked block
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if mark, ok := strings.CutPrefix(strings.TrimSpace(line), dialectMark); ok {
			switch mark = strings.TrimSpace(mark); mark {
			case "postgres", "sqlite":
				block = mark
			case "end":
				if block == "" {
					return nil, fmt.Errorf("line %d: %send outside a block", n, dialectMark)
				}
				block = ""
			default:
				return nil, fmt.Errorf("line %d: unknown dialect %q: want postgres, sqlite or end", n, mark)
			}
			out.WriteByte('\n')
			continue
		}
		if block == "" || block == dialect {
			out.WriteString(line)
		}
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if block != "" {
		return nil, fmt.Errorf("%s%s block has no %send", dialectMark, block, dialectMark)
	}
	return out.Bytes(), nil
}

type sqlFile struct {
	*bytes.Reader
	info fs.FileInfo
}

func (f *sqlFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *sqlFile) Close() error               { return nil }

// sizedInfo is the file's own info with the size of the text goose reads.
type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (i sizedInfo) Size() int64 { return i.size }
