"""A run read into the tables that pages and findings share: the example table, accuracy
curves by kind of example, and the seed-group studies. Reads runs through the store and
computes with the measures."""
