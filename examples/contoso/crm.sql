-- The Contoso CRM demo data: customers and their orders. Alice Martin is the data subject
-- of the sample requests; the others must survive her requests untouched.
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
  (1, 'alice@contoso.com', 'Alice Martin', '+33 1 23 45 67 89', 'Paris', '2024-01-15'),
  (2, 'bob@contoso.com', 'Bob Okafor', '+44 20 7946 0000', 'London', '2024-02-03'),
  (3, 'carol@contoso.com', 'Carol Nguyen', NULL, 'Seattle', '2024-03-21'),
  (4, 'dan.o''brien@contoso.com', 'Dan O''Brien', NULL, 'Dublin', '2024-05-09');
INSERT INTO orders (id, customer_id, item, total, shipping_address, ordered_at) VALUES
  (101, 1, 'Smart thermostat', 129.00, '12 rue de la Paix, Paris', '2024-01-20'),
  (102, 1, 'Door badge holder', 9.50, '12 rue de la Paix, Paris', '2024-06-02'),
  (103, 1, 'Room sensor kit', 59.90, '12 rue de la Paix, Paris', '2025-02-11'),
  (201, 2, 'Smart thermostat', 129.00, '1 Canada Square, London', '2024-02-10'),
  (301, 3, 'Security camera', 249.00, NULL, '2024-04-01'),
  (401, 4, 'Room sensor kit', 59.90, '7 Grafton Street, Dublin', '2024-05-10');
