// The AWS SDK warns on every client that Node 20 support ends in 2027; it is noise in test output.
process.env.AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING ??= '1';
