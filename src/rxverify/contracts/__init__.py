"""Reading the contract data: the old interface's WSDL/XSD (riv), the OpenAPI generated from them."""
