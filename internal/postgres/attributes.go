package postgres

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"

	"github.com/trellis-authz/trellis/internal/model"
)

// AttributesColumn is model.Attributes as the nullable jsonb attributes
// column of resources and organizations (0014_attributes.sql) holds them:
// SQL NULL is none (nil). Convert a *model.Attributes to scan into it, a
// model.Attributes to pass it as an argument (COPY included).
type AttributesColumn model.Attributes

// Scan decodes NULL as nil and a JSON object as model.Attributes do
// (numbers as json.Number; an empty object is nil).
func (a *AttributesColumn) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*a = nil
		return nil
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("attributes: cannot scan %T", src)
	}
	var m model.Attributes
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*a = AttributesColumn(m)
	return nil
}

// Value is the canonical JSON (model.Attributes.JSON) as text, or NULL
// for none. Text, not []byte: lib/pq sends a []byte as bytea, which a
// jsonb column does not read.
func (a AttributesColumn) Value() (driver.Value, error) {
	b := model.Attributes(a).JSON()
	if b == nil {
		return nil, nil
	}
	return string(b), nil
}
