-- The Fabrikam CRM demo data. Same schema as Contoso's (crm.sql), different people.
CREATE TABLE IF NOT EXISTS customers (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  phone TEXT,
  city TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id),
  item TEXT NOT NULL,
  total REAL NOT NULL,
  shipping_address TEXT,
  ordered_at TEXT NOT NULL
);
INSERT INTO customers (id, email, name, phone, city, created_at) VALUES
  (1, 'frank@fabrikam.com', 'Frank Weber', '+49 30 1234567', 'Berlin', '2024-03-01'),
  (2, 'alice@contoso.com', 'Alice Martin', NULL, 'Paris', '2025-01-10');
INSERT INTO orders (id, customer_id, item, total, shipping_address, ordered_at) VALUES
  (501, 1, 'Pressure sensor', 310.00, 'Werkstrasse 4, Berlin', '2024-03-05'),
  (502, 2, 'Pressure sensor', 310.00, NULL, '2025-01-12');
