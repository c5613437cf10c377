# test/fuzz: fuzz targets for the parsers that face the network; short runs in the suite.
