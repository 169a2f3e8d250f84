package responders

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"

	"github.com/shouwang/shouwang/errdefs"
)

var (
	zipMagic = []byte("PK\x03\x04")
	// Compound File Binary: an old .xls, or an .xlsx protected by a password.
	cfbMagic   = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
	utf8BOM    = []byte{0xEF, 0xBB, 0xBF}
	utf16LEBOM = []byte{0xFF, 0xFE}
)

// xlsxUnzipLimit bounds how much a workbook may expand to when unzipped,
// so a small upload cannot make the server inflate gigabytes.
const xlsxUnzipLimit = 256 << 20

func fileError(zh, en string) error {
	return errdefs.Invalid("file", zh+" ("+en+")")
}

// ReadRosterFile reads the rows of a roster file, rows[i] being the
// spreadsheet's row i+1. It takes an Excel workbook (.xlsx: the first
// sheet, raw cell values so dates arrive as serial numbers whatever their
// display format) or CSV: UTF-8 with or without a BOM, GB18030/GBK (what
// Chinese Excel writes for "CSV"), or Excel's UTF-16 "Unicode text"; comma,
// semicolon or tab separated. The kind is told from the content, not the
// file name.
func ReadRosterFile(data []byte) ([][]string, error) {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, fileError("文件是空的", "the file is empty")
	case bytes.HasPrefix(data, zipMagic):
		return readXLSX(data)
	case bytes.HasPrefix(data, cfbMagic):
		return nil, fileError("无法读取 .xls 或加密的工作簿：请在 Excel 中另存为 .xlsx（Excel 工作簿）或 CSV",
			"old .xls and password-protected workbooks cannot be read: save as .xlsx or CSV")
	}
	text, err := decodeText(data)
	if err != nil {
		return nil, err
	}
	return readCSV(text)
}

// decodeText turns CSV bytes into UTF-8 text.
func decodeText(data []byte) (string, error) {
	switch {
	case bytes.HasPrefix(data, utf8BOM):
		data = data[len(utf8BOM):]
	case bytes.HasPrefix(data, utf16LEBOM):
		out, err := unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder().Bytes(data)
		if err != nil {
			return "", fileError("无法读取 UTF-16 文本", "cannot decode UTF-16 text: "+err.Error())
		}
		data = out
	case !utf8.Valid(data):
		// Not UTF-8: Chinese Windows and Excel write GBK, which GB18030
		// contains.
		out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
		if err != nil {
			return "", fileError("文件编码无法识别：请存为 UTF-8 或 GBK 编码的 CSV", "unknown text encoding: save as UTF-8 or GBK CSV")
		}
		data = out
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return "", fileError("不是 .xlsx 或 CSV 文件", "not an .xlsx or CSV file")
	}
	return string(data), nil
}

func readCSV(text string) ([][]string, error) {
	first, _, _ := strings.Cut(text, "\n")
	r := csv.NewReader(strings.NewReader(text))
	r.Comma = ','
	if n := strings.Count(first, ","); strings.Count(first, "\t") > n {
		r.Comma = '\t'
	} else if strings.Count(first, ";") > n {
		r.Comma = ';'
	}
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	var rows [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fileError(fmt.Sprintf("CSV 第 %d 行无法读取", len(rows)+1), err.Error())
		}
		rows = append(rows, rec)
		if len(rows) > MaxRosterRows+headerSearchRows {
			return nil, fileError(fmt.Sprintf("名单最多 %d 行，请分成几个文件导入", MaxRosterRows),
				fmt.Sprintf("a roster has at most %d rows; split the file", MaxRosterRows))
		}
	}
}

func readXLSX(data []byte) ([][]string, error) {
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: xlsxUnzipLimit})
	if err != nil {
		return nil, fileError("无法读取 Excel 文件：请确认是 .xlsx 工作簿", "cannot read the workbook: "+err.Error())
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, fileError("工作簿里没有工作表", "the workbook has no sheet")
	}
	it, err := f.Rows(sheets[0])
	if err != nil {
		return nil, fileError("无法读取第一个工作表", "cannot read the first sheet: "+err.Error())
	}
	defer it.Close()
	var rows [][]string
	blanks, filled := 0, 0
	for it.Next() {
		cells, err := it.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return nil, fileError(fmt.Sprintf("第 %d 行无法读取", len(rows)+blanks+1), err.Error())
		}
		// Blank rows are kept only between filled ones, so row numbers stay
		// true; sheets formatted down to row 1,048,576 cost nothing.
		if blank(cells) {
			blanks++
			continue
		}
		rows = append(rows, make([][]string, blanks)...)
		rows = append(rows, cells)
		blanks = 0
		if filled++; filled > MaxRosterRows+headerSearchRows {
			return nil, fileError(fmt.Sprintf("名单最多 %d 行，请分成几个文件导入", MaxRosterRows),
				fmt.Sprintf("a roster has at most %d rows; split the file", MaxRosterRows))
		}
	}
	if err := it.Error(); err != nil {
		return nil, fileError("无法读取第一个工作表", "cannot read the first sheet: "+err.Error())
	}
	return rows, nil
}
