// Starts kinesalite on 127.0.0.1 only: its own cli.js listens on every
// interface. Usage: node kinesalite-loopback.js PORT
const port = Number(process.argv[2] || 4568)
const server = require('kinesalite')({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 })
server.listen(port, '127.0.0.1', () => console.log('Listening at http://127.0.0.1:%d', port))
